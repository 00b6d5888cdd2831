// Package outage is part 1 of the fault suite: member outages (a stopped API
// server, a black hole), operator process faults (SIGKILL mid fan-out and
// mid deletion, leader failover), deletion while a member is unreachable, and
// credential rotation. Each test runs the real hub-operator binary against a
// real hub and three real members and asserts what a user would check, with
// bounded waits; the measured numbers are logged.
package outage
