#![allow(dead_code)]
pub mod driver;
