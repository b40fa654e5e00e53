"""Scale-out: worker processes on one machine (workers.py, `--jobs`) and
Ray clusters (ray_*.py, `coreseg.dist`). Imports evaluation and
everything below it; only the CLI sits above."""
