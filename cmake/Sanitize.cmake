# ZJ_SANITIZE="address,undefined" -> compile and link flags on our targets only.
function(zj_target_sanitize tgt)
    if(ZJ_SANITIZE)
        target_compile_options(${tgt} PRIVATE -fsanitize=${ZJ_SANITIZE}
            -fno-sanitize-recover=all -fno-omit-frame-pointer)
        target_link_options(${tgt} PRIVATE -fsanitize=${ZJ_SANITIZE})
    endif()
endfunction()
