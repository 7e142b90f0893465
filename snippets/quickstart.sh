make serve   # installs into .venv if needed, serves the site at http://127.0.0.1:8000
make test    # installs into .venv if needed, runs every test and every example
