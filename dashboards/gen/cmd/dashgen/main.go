// Command dashgen writes ShelterWatch's Grafana dashboards as JSON:
//
//	go run ./dashboards/gen/cmd/dashgen -out dashboards/json
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/shelterwatch/shelterwatch/dashboards/gen"
)

func main() {
	out := flag.String("out", "dashboards/json", "directory to write <folder>/<name>.json into")
	flag.Parse()
	if err := gen.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
