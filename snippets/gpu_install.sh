# The CUDA build of the same torch, with the NVIDIA libraries it depends on: a few GB.
# make install keeps it: torch==2.13.0 in requirements.lock accepts either build,
# and only a new torch pin there brings another build back.
.venv/bin/python -m pip install "torch==2.13.0+cu128" --index-url https://download.pytorch.org/whl/cu128
