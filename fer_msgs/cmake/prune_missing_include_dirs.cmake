# Drop include directories that do not exist from every imported target.
#
# The ROS 2 wheels on PyPI ship CMake exports that name include directories of
# their build machine (e.g. /opt/python/cp311-cp311/...). CMake refuses to
# generate when an imported target names a missing directory, so this prunes
# them once all targets are known (deferred to the end of the directory).
function(_fer_msgs_prune_now)
  get_property(_targets DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept)
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "\\$<" OR EXISTS "${_dir}")
        list(APPEND _kept "${_dir}")
      endif()
    endforeach()
    if(NOT "${_kept}" STREQUAL "${_dirs}")
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()

macro(fer_msgs_prune_missing_include_dirs)
  cmake_language(DEFER CALL _fer_msgs_prune_now)
endmacro()
