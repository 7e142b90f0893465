make test    # installs into .venv (about a minute), then runs every test and example (about 8 minutes)
make serve   # serves the site at http://127.0.0.1:8000 until you press Ctrl+C (first start: about a minute)
