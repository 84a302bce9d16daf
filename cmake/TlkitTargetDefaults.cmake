# One place for the properties every tlkit target shares (xgboost's xgboost_target_properties),
# instead of global CMAKE_CXX_FLAGS.
function(tlkit_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_17)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF POSITION_INDEPENDENT_CODE ON)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  if(TLKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(TLKIT_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=address,undefined -fno-omit-frame-pointer
                                            -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
  if(TLKIT_BUILD_FUZZERS)
    # Coverage instrumentation for libFuzzer plus the sanitizers that turn bugs into reports.
    target_compile_options(${target} PUBLIC -fsanitize=fuzzer-no-link,address,undefined
                                            -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()
