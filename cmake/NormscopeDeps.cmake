# Finds every dependency; a missing one stops configure with the Debian package that provides it.

function(ns_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "normscope needs ${what}, which was not found: apt-get install ${package}")
  endif()
endfunction()

find_package(GSL QUIET)
ns_require(GSL_FOUND "GSL" libgsl-dev)

# OpenBLAS with its CBLAS header (Debian: /usr/include/<triplet>/cblas.h via alternatives)
find_library(NS_OPENBLAS_LIB NAMES openblas)
find_path(NS_CBLAS_INCLUDE NAMES cblas.h PATH_SUFFIXES openblas)
ns_require(NS_OPENBLAS_LIB "OpenBLAS" libopenblas-dev)
ns_require(NS_CBLAS_INCLUDE "the CBLAS header (cblas.h)" libopenblas-dev)
add_library(ns_openblas INTERFACE)
target_link_libraries(ns_openblas INTERFACE ${NS_OPENBLAS_LIB})
target_include_directories(ns_openblas INTERFACE ${NS_CBLAS_INCLUDE})

find_library(NS_LAPACKE_LIB NAMES lapacke)
find_path(NS_LAPACKE_INCLUDE NAMES lapacke.h)
ns_require(NS_LAPACKE_LIB "LAPACKE" liblapacke-dev)
ns_require(NS_LAPACKE_INCLUDE "the LAPACKE header (lapacke.h)" liblapacke-dev)
add_library(ns_lapacke INTERFACE)
target_link_libraries(ns_lapacke INTERFACE ${NS_LAPACKE_LIB} ns_openblas)
target_include_directories(ns_lapacke INTERFACE ${NS_LAPACKE_INCLUDE})

find_package(HDF5 QUIET COMPONENTS C HL)
ns_require(HDF5_FOUND "HDF5 (C and high-level libraries)" libhdf5-dev)
add_library(ns_hdf5 INTERFACE)
target_link_libraries(ns_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_HL_LIBRARIES})
target_include_directories(ns_hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
target_compile_definitions(ns_hdf5 INTERFACE ${HDF5_DEFINITIONS})

find_package(OpenMP QUIET COMPONENTS C)
ns_require(OpenMP_C_FOUND "OpenMP" "gcc (libgomp)")

find_library(NS_MATH_LIB m)
