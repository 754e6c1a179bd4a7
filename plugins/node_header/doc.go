// Package nodeheader holds the end-to-end test of node_header, the Node.js
// stage-20 plugin in this folder (main.js): the Go test starts the real host
// with the plugin loaded and checks its verdicts. The plugin itself is
// JavaScript; see README.md.
package nodeheader
