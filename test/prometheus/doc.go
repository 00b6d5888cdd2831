// Package prometheus tests the chart's monitoring against a real Prometheus
// server (Debian's prometheus package: `apt-get install -y prometheus`).
//
// TestPrometheus runs the real operator binary against a real hub and two
// members, and a Prometheus that scrapes its HTTPS metrics endpoint the way
// the chart's ServiceMonitor says, with a ServiceAccount token bound to the
// chart's metrics-reader ClusterRole, and evaluates the chart's alerts. It
// drives a scenario that moves every series the dashboards and alerts read
// (a Ready MyResource, one a member's ResourceQuota refuses, a member's API
// server stopped and started again), then asks Prometheus every query of
// every dashboard panel and waits for every alert to fire.
//
// TestAlertRules runs `promtool check rules` on the chart's rendered
// PrometheusRule and `promtool test rules` on the unit tests committed in
// charts/hub-operator/tests/alerts_test.yaml, against rules rendered from
// the chart by the test, and fails when an alert has no test there.
//
// Without prometheus and promtool on PATH the tests fail, saying how to
// install them; under -short they skip (the promtool tests run under -short
// when promtool is there).
package prometheus
