// Package browsertest holds the web console's browser tests: Debian's
// Chromium, driven over the DevTools protocol, against a running gateway
// with its embedded broker, simulated cameras and real MQTT publishers.
// They need the console built (make console) and Chromium installed
// (make test installs both); under CI=true a missing one fails.
//
// The tests save a screenshot of every page, in zh-CN and English, at
// desktop and phone widths, into gateway/console/screenshots (git-ignored).
package browsertest
