# zj_target_warnings(tgt): the one warning list, applied per target (STYLE §6).
function(zj_target_warnings tgt)
    target_compile_options(${tgt} PRIVATE
        -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wimplicit-fallthrough -Wundef
        -Wcast-align -Werror=implicit-function-declaration
        $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes -Wmissing-prototypes>)
    if(ZJ_WERROR)
        target_compile_options(${tgt} PRIVATE -Werror)
    endif()
endfunction()
