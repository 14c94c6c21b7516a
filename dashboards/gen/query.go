package gen

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/shelterwatch/shelterwatch/dashboards/plugin/datasource"
)

// The data sources the dashboards use, by the uid the provisioning file
// (provisioning/datasources/shelterwatch.yaml) gives them.
const (
	InfluxQLUID   = "shelterwatch-influxql"
	FluxUID       = "shelterwatch-flux"
	GatewayUID    = "shelterwatch-gateway"
	PrometheusUID = "shelterwatch-prometheus"

	InfluxType     = "influxdb"
	GatewayType    = "shelterwatch-gateway-datasource"
	PrometheusType = "prometheus"
)

// Ref returns the reference to a data source of the given type and uid.
func Ref(typ, uid string) common.DataSourceRef {
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

// InfluxQuery is a target of Grafana's core InfluxDB data source, which the
// foundation SDK has no package for. InfluxQL targets are raw queries
// (rawQuery true); Flux targets use only query.
type InfluxQuery struct {
	RefId        string                `json:"refId"`
	Hide         *bool                 `json:"hide,omitempty"`
	Datasource   *common.DataSourceRef `json:"datasource,omitempty"`
	Query        string                `json:"query"`
	RawQuery     bool                  `json:"rawQuery,omitempty"`
	ResultFormat string                `json:"resultFormat,omitempty"`
}

// ImplementsDataqueryVariant marks InfluxQuery as a data query.
func (q InfluxQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the data source type the query is for.
func (q InfluxQuery) DataqueryType() string { return InfluxType }

// Equals compares two queries.
func (q InfluxQuery) Equals(other variants.Dataquery) bool { return reflect.DeepEqual(any(q), other) }

// Validate checks what Grafana needs to run the query.
func (q InfluxQuery) Validate() error {
	if q.RefId == "" || q.Query == "" {
		return fmt.Errorf("influxdb query: refId and query are required")
	}
	return nil
}

// GatewayQuery is a target of the ShelterWatch data source plugin: the
// gateway's own API (alarms, cameras, remote-video sessions), which is not
// in InfluxDB.
type GatewayQuery struct {
	RefId      string                `json:"refId"`
	Hide       *bool                 `json:"hide,omitempty"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	// QueryType is one the plugin answers (datasource.Query*).
	QueryType string `json:"queryType"`
}

// Query types the dashboards use: the plugin's own names, so a dashboard
// cannot ask for one the plugin does not answer.
const (
	QueryAlarms        = datasource.QueryAlarms
	QueryAlarmReport   = datasource.QueryAlarmReport
	QueryCameras       = datasource.QueryCameras
	QueryVideoSessions = datasource.QueryVideoSessions
)

// ImplementsDataqueryVariant marks GatewayQuery as a data query.
func (q GatewayQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the data source type the query is for.
func (q GatewayQuery) DataqueryType() string { return GatewayType }

// Equals compares two queries.
func (q GatewayQuery) Equals(other variants.Dataquery) bool { return reflect.DeepEqual(any(q), other) }

// Validate checks the query type.
func (q GatewayQuery) Validate() error {
	switch q.QueryType {
	case QueryAlarms, QueryAlarmReport, QueryCameras, QueryVideoSessions:
		return nil
	}
	return fmt.Errorf("shelterwatch query: unknown queryType %q", q.QueryType)
}

// Register tells the SDK's runtime how to decode the two query variants
// when it reads a dashboard (json.Unmarshal into dashboard.Dashboard).
// Without it they decode as UnknownDataquery maps, which round-trip too.
func Register() {
	rt := cog.NewRuntime()
	rt.RegisterDataqueryVariant(variants.DataqueryConfig{
		Identifier:                 InfluxType,
		DataqueryUnmarshaler:       decodeAs[InfluxQuery](false),
		StrictDataqueryUnmarshaler: decodeAs[InfluxQuery](true),
	})
	rt.RegisterDataqueryVariant(variants.DataqueryConfig{
		Identifier:                 GatewayType,
		DataqueryUnmarshaler:       decodeAs[GatewayQuery](false),
		StrictDataqueryUnmarshaler: decodeAs[GatewayQuery](true),
	})
}

func decodeAs[T variants.Dataquery](strict bool) func([]byte) (variants.Dataquery, error) {
	return func(raw []byte) (variants.Dataquery, error) {
		var q T
		var err error
		if strict {
			err = strictJSON(raw, &q)
		} else {
			err = json.Unmarshal(raw, &q)
		}
		if err != nil {
			return nil, err
		}
		return q, nil
	}
}

// built is a finished query as a cog.Builder, for WithTarget.
type built struct{ q variants.Dataquery }

func (b built) Build() (variants.Dataquery, error) { return b.q, b.q.Validate() }

var _ cog.Builder[variants.Dataquery] = built{}
