//! The local services' handlers and reply builders, called directly.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passt_fuzz::services::run_services(data);
});
