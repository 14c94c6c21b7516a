//go:build race

package whep

const raceBuild = true
