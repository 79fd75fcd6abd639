# Helpers for the project's own tests, examples and benchmarks (not exported).
#
#   bimamba_add_test(<name> SOURCES a.cpp ... [CUDA] [LABELS l ...])
#   bimamba_add_example(<name> SOURCES ... [CUDA])
#   bimamba_add_benchmark(<name> SOURCES ... [CUDA])
#
# CUDA targets link bimamba::cuda and are only created when the CUDA language is enabled. Every ctest test
# gets the label of its area; device tests also carry the label `cuda` (they skip at run time without a GPU).
include(GoogleTest)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

set(BIMAMBA_WITH_CUDA OFF)
if(BIMAMBA_ENABLE_CUDA AND BIMAMBA_HAVE_CUDA_TOOLKIT)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(BIMAMBA_WITH_CUDA ON)
  endif()
endif()
message(STATUS "bimamba: CUDA tests/examples/benchmarks: ${BIMAMBA_WITH_CUDA}")

find_package(GTest QUIET)
find_package(benchmark QUIET)

function(_bimamba_configure_target target cuda)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
  if(BIMAMBA_NATIVE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>
                                              $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-march=native>)
  endif()
  if(cuda)
    target_link_libraries(${target} PRIVATE bimamba::cuda)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr
                                              --extended-lambda -Xcudafe=--diag_suppress=20012>)
    if(TARGET OpenMP::OpenMP_CXX)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fopenmp>)
    endif()
  else()
    target_link_libraries(${target} PRIVATE bimamba::bimamba)
  endif()
endfunction()

function(bimamba_add_test name)
  cmake_parse_arguments(ARG "CUDA" "" "SOURCES;LABELS" ${ARGN})
  if(ARG_CUDA AND NOT BIMAMBA_WITH_CUDA)
    return()
  endif()
  if(NOT GTest_FOUND)
    message(FATAL_ERROR "bimamba tests need GoogleTest: install the Debian package 'libgtest-dev'")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  _bimamba_configure_target(${name} ${ARG_CUDA})
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main GTest::gmock)
  set(labels ${ARG_LABELS})
  if(ARG_CUDA)
    list(APPEND labels cuda)
  endif()
  # The checkout is found at run time (tests/common/test_support.hpp), not compiled in: no absolute path in
  # the compile flags, so fresh clones anywhere reuse the ccache entries.
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120
                       PROPERTIES LABELS "${labels}" ENVIRONMENT "BIMAMBA_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
                       WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()

function(bimamba_add_example name)
  cmake_parse_arguments(ARG "CUDA" "" "SOURCES" ${ARGN})
  if(ARG_CUDA AND NOT BIMAMBA_WITH_CUDA)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  _bimamba_configure_target(${name} ${ARG_CUDA})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

function(bimamba_add_benchmark name)
  cmake_parse_arguments(ARG "CUDA" "" "SOURCES" ${ARGN})
  if(ARG_CUDA AND NOT BIMAMBA_WITH_CUDA)
    return()
  endif()
  if(NOT benchmark_FOUND)
    message(FATAL_ERROR "bimamba benchmarks need Google Benchmark: install the Debian package 'libbenchmark-dev'")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  _bimamba_configure_target(${name} ${ARG_CUDA})
  target_link_libraries(${name} PRIVATE benchmark::benchmark)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()
