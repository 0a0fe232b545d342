"""``python -m torch_caffe2ops.caffe2 inspect|convert ...`` (see cli.py)."""
import sys

from .cli import main

sys.exit(main())
