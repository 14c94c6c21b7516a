// Command gpx_shelterwatch is the ShelterWatch data source plugin's backend:
// Grafana starts it over its plugin protocol and calls it for queries,
// health checks, pick lists and live alarm streams.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	swds "github.com/shelterwatch/shelterwatch/dashboards/plugin/datasource"
)

func main() {
	if err := datasource.Manage(PluginID, swds.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error(err.Error())
		os.Exit(1)
	}
}

// PluginID is the id in plugin.json.
const PluginID = "shelterwatch-gateway-datasource"
