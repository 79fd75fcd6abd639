# Finds the library's dependencies, all from Debian packages (plus the CUDA toolkit when present). A missing
# one stops the configure with the package to install.
include(CheckLanguage)

macro(bimamba_require package debian_package)
  find_package(${package} ${ARGN} QUIET)
  if(NOT ${package}_FOUND)
    message(FATAL_ERROR "bimamba needs ${package}: install the Debian package '${debian_package}' "
                        "(apt-get install ${debian_package})")
  endif()
endmacro()

bimamba_require(Eigen3 libeigen3-dev 3.3 NO_MODULE)
bimamba_require(nlohmann_json nlohmann-json3-dev 3.10)
find_package(OpenMP QUIET COMPONENTS CXX)
find_package(Threads REQUIRED)

# CUDA: the toolkit (runtime, cuBLAS, CCCL) for bimamba::cuda, and the CUDA language for our own CUDA tests.
set(BIMAMBA_HAVE_CUDA_TOOLKIT OFF)
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND)
  find_package(CCCL CONFIG QUIET HINTS "${CUDAToolkit_LIBRARY_ROOT}/lib/cmake" "${CUDAToolkit_LIBRARY_DIR}/cmake")
  if(CCCL_FOUND)
    set(BIMAMBA_HAVE_CUDA_TOOLKIT ON)
  else()
    message(STATUS "bimamba: CUDA toolkit found without CCCL; the Cuda backend is disabled")
  endif()
endif()
