//! End-to-end tests of the verbs that execute: `plan`, `run`, `resume`,
//! `rollback`, `runs`, `show`, `unlock`. Each test builds a lab in a temporary
//! directory (an environment with this machine as a `local` host, playbooks
//! written by the test, a key-value HTTP server on loopback when it needs one)
//! and runs the real binary there.

#[path = "../support/apt_lab.rs"]
mod apt_lab;
mod crash;
mod docs;
mod estate;
mod explain;
mod faults;
mod harness;
mod impact;
mod kong;
mod kong_entity;
mod kong_health;
mod kong_lab;
mod kong_nodes;
mod kong_playbooks;
mod kong_restart;
mod kong_rotations;
mod kong_scale;
mod kong_upgrade;
mod lab;
mod layer7_graphman;
mod layer7_key_rotation;
mod layer7_migration;
mod layer7_nodes;
mod live;
mod partial_apply;
mod project;
mod readme;
mod reliability;
mod restored_undo;
mod runbook_doc;
mod ssh;
mod state_pg;
#[path = "../support/sshd.rs"]
mod sshd;
#[path = "../support/postgres.rs"]
mod postgres;
mod traffic;
mod twin;
mod twin_auth;
mod twin_layer7;
mod verbs;
