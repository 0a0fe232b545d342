"""Fuzz suite for torch.ops.caffe2ops.

cases.py   random inputs per op (generators) and references written from docs/operators/
worker.py  runs cases in a child process (crash/hang isolation, RLIMIT_AS), and --repro
runner.py  parent side: feeds a worker, restarts it after a crash, collects outcomes
"""
