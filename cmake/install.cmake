# `cmake --install` lays out a package that find_package(Sunray) loads,
# providing Sunray::ray.
include(CMakePackageConfigHelpers)

install(TARGETS sunray_ray sunray_headers EXPORT SunrayTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ray DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT SunrayTargets NAMESPACE Sunray::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Sunray)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/SunrayConfig.cmake.in
  ${PROJECT_BINARY_DIR}/SunrayConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Sunray)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SunrayConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SunrayConfig.cmake
              ${PROJECT_BINARY_DIR}/SunrayConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Sunray)
