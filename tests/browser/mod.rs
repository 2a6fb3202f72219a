//! Support for the dashboard's tests: [`fixtures`] (the real daemon with admin users,
//! bookings through the signed webhook, escalations and dead letters as the engine
//! writes them, and signing in through the dashboard's form) and [`webdriver`] (headless
//! Chromium driven through chromedriver, with screenshots kept as artifacts).

#![allow(dead_code)]

pub mod fixtures;
pub mod webdriver;
