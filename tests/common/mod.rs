#![allow(dead_code)]
pub mod driver;
pub mod netns;
