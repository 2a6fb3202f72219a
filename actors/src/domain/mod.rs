//! Pure domain rules: the appointment and workflow state machines, the risk score and
//! the guardrails (quiet hours, the rolling message cap). No actors, no I/O, no clock
//! reads — every function takes the instant it reasons about.

pub mod appointment_status;
pub mod message_cap;
pub mod quiet_hours;
pub mod risk;
pub mod workflow_state;
