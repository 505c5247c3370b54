//! `frames` with an MTU of 576 (IPv6 off, small segments).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passt_fuzz::harness::run_frames_mtu576(data);
});
