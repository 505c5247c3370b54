#![allow(dead_code)]
pub mod driver;
pub mod kit;
pub mod netns;
pub mod tempdir;
