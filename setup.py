"""Builds torch_caffe2ops' extension against the torch that is already installed.

The static metadata (name, description, license, extras, the console command) is in
pyproject.toml. This file computes what depends on the torch found here: the extension, the
version's local label and the dependency that pins that torch.

  version       BASE_VERSION + "+pt<major><minor><patch><device>", e.g. 0.1.0+pt2130cpu (torch
                2.13.0, CPU) or 0.1.0+pt2141cu130 (torch 2.14.1, CUDA 13.0 kernels); an sdist, and
                a wheel built from one, have BASE_VERSION alone (the sdist fixes the version)
  dependencies  torch==<this torch's public version> (an sdist: torch, unpinned)

Build without isolation so that the installed torch is used: ``pip install --no-build-isolation .``,
``pip wheel --no-build-isolation --no-deps .`` or ``-e .`` (scripts/setup.sh). Under pip's default
isolation the in-tree backend (build_backend/) stops before anything is downloaded.

Switches (environment variables):
  FORCE_CUDA=1       build the .cu sources even without a visible GPU (CUDA torch and nvcc needed)
  FORCE_ONLY_CPU=1   never build the .cu sources
  DEBUG=1            -O0 -g instead of the release flags
  SANITIZE=address,undefined   -O1 -g1 -fsanitize=... -fno-omit-frame-pointer, unstripped (scripts/asan.sh)
  TORCH_CUDA_ARCH_LIST, CUDA_HOME   honoured as by torch.utils.cpp_extension
  TORCH_CAFFE2OPS_BUILD_TEMP=DIR    keep the compiled objects (and ninja's log) in DIR; a build
                     with the same flags and sources then only links (scripts/build_wheel.sh
                     points the wheel builds at the objects of the editable and CUDA builds)
"""
import glob
import os
import re
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
BASE_VERSION = "0.1.0"
PACKAGE = "torch_caffe2ops"
# An sdist carries the sources, not a build: no torch needed, no pin, no local label.
# (build_backend/ sets the variable for `python -m build --sdist`; `setup.py sdist` directly too.)
SDIST = os.environ.get("TORCH_CAFFE2OPS_SDIST") == "1" or "sdist" in sys.argv[1:]
# Building from an unpacked sdist (it has PKG-INFO at its root): the sdist fixed the version, and
# a wheel built from it must carry the same one (pip checks it against the sdist's file name), so
# no local label there; the wheel still pins its torch.
FROM_SDIST = os.path.isfile(os.path.join(ROOT, "PKG-INFO"))

try:
    import torch
except ImportError:
    if not SDIST:
        sys.exit(
            f"torch_caffe2ops: torch is not importable by {sys.executable}. The extension is compiled "
            "against the installed torch: install torch first, then build without isolation "
            "(pip install --no-build-isolation .). See README.md, section Install."
        )
    torch = None


def _flag(name):
    return os.environ.get(name, "0") == "1"


def _gcc_x86_tuning():
    """GCC's generic tuning splits every unaligned 32-byte load and store in two, so the AVX2
    clones of the copy loops would move 16 bytes at a time; these flags keep them whole (they
    change no result, and nothing without AVX)."""
    import platform
    import subprocess

    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    cxx = os.environ.get("CXX", "c++")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    if "Free Software Foundation" not in version:  # GCC only; clang prints no such line
        return []
    return ["-mno-avx256-split-unaligned-load", "-mno-avx256-split-unaligned-store"]


def _build_cuda():
    from torch.utils.cpp_extension import CUDA_HOME

    if _flag("FORCE_ONLY_CPU"):
        return False
    cuda_torch = torch.version.cuda is not None and CUDA_HOME is not None
    if _flag("FORCE_CUDA"):
        if not cuda_torch:
            raise RuntimeError("FORCE_CUDA=1 needs a CUDA build of torch and nvcc (set CUDA_HOME)")
        return True
    return cuda_torch


def _cuda_settings():
    """cmake/cuda_build.txt: the arch list and nvcc flags shared with the CMake build."""
    settings = {}
    with open(os.path.join(ROOT, "cmake", "cuda_build.txt")) as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.strip().split("=", 1)
                settings[key] = value
    return settings


def _nvidia_dirs(package):
    """include/ and lib/ of a pip-installed NVIDIA package (nvidia.<package>), if any."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(f"nvidia.{package}")
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    base = list(spec.submodule_search_locations)[0]
    return os.path.join(base, "include"), os.path.join(base, "lib")


def _loaded_cudnn():
    """The libcudnn that this torch loaded (its wheel preloads it, or libtorch_cuda needs it):
    link the same file, so no cuDNN version is written down here. None if torch has none."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if os.path.basename(path).startswith("libcudnn.so"):
                    return path
    except OSError:
        pass
    return None


def _sources(with_cuda):
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True)) if with_cuda else []
    return cpp + cu


def _torch_public_version():
    return torch.__version__.split("+")[0]


def _version(with_cuda):
    """BASE_VERSION with a local label naming the torch and the device (see the docstring)."""
    if FROM_SDIST:
        return BASE_VERSION
    major, minor, patch = re.match(r"(\d+)\.(\d+)\.(\d+)", torch.__version__).groups()
    device = f"cu{torch.version.cuda.replace('.', '')}" if with_cuda else "cpu"
    return f"{BASE_VERSION}+pt{major}{minor}{patch}{device}"


def _write_build_info(package_dir, with_cuda):
    # Read by __init__.py before the library is loaded, so a torch mismatch is reported
    # in words instead of as an undefined-symbol error from the dynamic loader. Written next
    # to the built library (the source tree for --inplace builds, build/lib otherwise), so a
    # second build for another torch in another environment does not overwrite this one's.
    path = os.path.join(package_dir, "_build_info.py")
    text = (
        "# Generated by setup.py; do not edit.\n"
        f"__version__ = {_version(with_cuda)!r}\n"
        f"TORCH_VERSION = {torch.__version__!r}\n"
        f"CUDA_VERSION = {(torch.version.cuda if with_cuda else None)!r}\n"
    )
    with open(path, "w") as f:
        f.write(text)


def _build_ext_class():
    from torch.utils.cpp_extension import BuildExtension

    class BuildExt(BuildExtension.with_options(use_ninja=True)):
        def finalize_options(self):
            super().finalize_options()
            # `pip install -e .` builds in a fresh temporary folder each time, which would
            # recompile every source; keep the editable build's objects (and ninja's log) under
            # build/ so a re-install recompiles only what changed. TORCH_CAFFE2OPS_BUILD_TEMP
            # points any build at a folder of objects (a wheel built with the editable build's
            # flags then only links). Other builds (pip install ., setup.py build --build-temp
            # DIR) are untouched. editable_mode exists from setuptools 64 on.
            if os.environ.get("TORCH_CAFFE2OPS_BUILD_TEMP"):
                self.build_temp = os.path.abspath(os.environ["TORCH_CAFFE2OPS_BUILD_TEMP"])
            elif getattr(self, "editable_mode", False):
                self.build_temp = os.path.join(ROOT, "build", "editable")

        def run(self):
            super().run()
            for ext in self.extensions:
                _write_build_info(os.path.dirname(self.get_ext_fullpath(ext.name)), WITH_CUDA)

    return BuildExt


def _extension():
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    with_cuda = WITH_CUDA
    debug = _flag("DEBUG")
    opt = ["-O0", "-g"] if debug else ["-O3", "-g0"]
    sanitize = os.environ.get("SANITIZE", "")
    if sanitize:
        opt = ["-O1", "-g1", f"-fsanitize={sanitize}", "-fno-omit-frame-pointer"]
    # No -ffast-math: -fno-trapping-math and -fno-math-errno only let the compiler vectorise
    # selects and skip errno; IEEE results are unchanged. -ffp-contract=off: a * b + c is
    # rounded twice in every SIMD clone, as in the scalar code (GCC would fuse it into an FMA
    # where the clone's target has one), so results do not depend on the CPU.
    cxx = opt + ["-fopenmp" if TORCH_USES_OPENMP else "-fopenmp-simd"]
    cxx += ["-fvisibility=hidden", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off"] + _gcc_x86_tuning()
    kwargs = dict(
        name=f"{PACKAGE}._C",
        sources=_sources(with_cuda),
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={"cxx": cxx},
        extra_link_args=(["-fopenmp"] if TORCH_USES_OPENMP else []) + ([] if debug or sanitize else ["-s"])
        + ([f"-fsanitize={sanitize}"] if sanitize else []),
        py_limited_api=True,
    )
    if with_cuda:
        kwargs["extra_compile_args"]["nvcc"] = opt[:1] + ["-lineinfo"] * debug
        kwargs["define_macros"] = [("WITH_CUDA", None)]
        kwargs["extra_compile_args"]["nvcc"] += _cuda_settings()["nvcc_flags"].split()
        # The CUDA library headers ATen includes come with a pip CUDA torch as an NVIDIA wheel
        # named after the CUDA major version.
        cuda_libs = _nvidia_dirs(f"cu{torch.version.cuda.split('.')[0]}")
        if cuda_libs and os.path.isdir(cuda_libs[0]):
            kwargs["include_dirs"].append(cuda_libs[0])
        # cuDNN (for cudnn_dropout): CUDNN_HOME, else the library torch itself loaded.
        if os.environ.get("CUDNN_HOME"):
            home = os.environ["CUDNN_HOME"]
            include, libs = os.path.join(home, "include"), [f"-L{os.path.join(home, 'lib')}", "-lcudnn"]
            rpath = os.path.join(home, "lib")
        else:
            lib = _loaded_cudnn()
            if lib is None:
                raise RuntimeError("CUDA build: this torch loads no cuDNN; set CUDNN_HOME to a cuDNN install")
            rpath = os.path.dirname(lib)
            include, libs = os.path.join(os.path.dirname(rpath), "include"), [lib]
            # torch loads this library before ours; the run path is a fallback. Where it comes
            # from a pip NVIDIA package (site-packages/nvidia/cudnn/lib), name it relative to our
            # package in the same site-packages, so a wheel carries no path of the build machine.
            if rpath.endswith(os.path.join("site-packages", "nvidia", "cudnn", "lib")):
                rpath = "$ORIGIN/../nvidia/cudnn/lib"
        if not os.path.isfile(os.path.join(include, "cudnn.h")):
            raise RuntimeError(f"CUDA build: cudnn.h not found in {include} (set CUDNN_HOME)")
        kwargs["include_dirs"].append(include)
        kwargs["extra_link_args"] += libs + [f"-Wl,-rpath,{rpath}"]
        kwargs["define_macros"].append(("WITH_CUDNN", None))
        return CUDAExtension(**kwargs)
    return CppExtension(**kwargs)


if SDIST:
    setup(version=BASE_VERSION, install_requires=["torch"])
else:
    WITH_CUDA = _build_cuda()
    if WITH_CUDA and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        os.environ["TORCH_CUDA_ARCH_LIST"] = _cuda_settings()["arch_list"]

    # at::parallel_for is inlined from ATen's headers: with an OpenMP torch it is an `omp parallel`
    # region in our own objects and needs -fopenmp; with any other backend it calls into torch and
    # only our `omp simd` loops need the pragma (-fopenmp-simd, no runtime).
    TORCH_USES_OPENMP = "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()

    setup(
        version=_version(WITH_CUDA),
        # The torch this is built against, exactly: the extension refuses any other at import, so
        # the installer refuses it too (a wheel for torch 2.13.0 does not install beside 2.14.1).
        install_requires=[f"torch=={_torch_public_version()}"],
        ext_modules=[_extension()],
        cmdclass={"build_ext": _build_ext_class()},
        # stable ABI from CPython 3.10 on (torch's cpp_extension compiles with Py_LIMITED_API=3.10)
        options={"bdist_wheel": {"py_limited_api": "cp310"}},
    )
