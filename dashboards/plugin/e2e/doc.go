// Package e2e holds the plugin's end-to-end tests: they build the plugin
// binary once, start it the way Grafana does (hashicorp go-plugin, gRPC,
// the data source handshake) against two gateways with demo data started
// in-process, and check what a Grafana user would see: health messages,
// queries, pick lists and the live alarm stream, including that a token
// without access to a facility gets nothing of it.
package e2e
