package tributary_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/constructs/tributary"
	"github.com/tributary/tributary/internal/layout"
)

func exampleSchema(t *testing.T) *eventschema.Schema {
	raw, err := os.ReadFile("../../test/testdata/event-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventschema.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// queriesRead lists the tables the named queries read.
func queriesRead(t *testing.T, tpl assertions.Template) string {
	var from []string
	for _, q := range *tpl.FindResources(jsii.String("AWS::Athena::NamedQuery"), nil) {
		sql := (*q)["Properties"].(map[string]any)["QueryString"].(string)
		from = append(from, regexp.MustCompile(`FROM (events\w*|errors)`).FindStringSubmatch(sql)[1])
	}
	sort.Strings(from)
	return strings.Join(from, " ")
}

// The catalog follows the other parts: it reads the data bucket in the
// delivery stream's layout and format, with the pipeline's schema; the
// queries read the typed table when there is one; Parquet converts with
// that table.
func TestCatalogAndQueriesFollowTheParts(t *testing.T) {
	p, tpl := pipelineIn(nil)
	if p.Catalog.Raw == nil || p.Catalog.Events != nil || p.Catalog.DatabaseName != "test" {
		t.Errorf("default catalog: raw %v, typed %v, database %s", p.Catalog.Raw, p.Catalog.Events, p.Catalog.DatabaseName)
	}
	if got := queriesRead(t, tpl); got != "errors errors events_raw events_raw events_raw events_raw" {
		t.Errorf("default queries read %s", got)
	}
	cdktest.Expect(t, "the tables read the data bucket", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": map[string]any{"Name": "events_raw", "Parameters": map[string]any{
			"storage.location.template": map[string]any{"Fn::Join": []any{"", []any{"s3://", map[string]any{"Ref": nag.LogicalID(p.RawData.Bucket)}, "/raw-data/${dt}/"}}},
		}}})
	})
	// Errors are a table too: the error prefix by error type and arrival hour.
	cdktest.Expect(t, "the errors table reads the error prefix", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": map[string]any{
			"Name": "errors",
			"PartitionKeys": []any{map[string]any{"Name": "error_type", "Type": "string", "Comment": "Firehose's error-output-type folder"},
				map[string]any{"Name": "dt", "Type": "string", "Comment": "the UTC hour folder, yyyy/MM/dd/HH; filter on it to read only those hours"}},
			"Parameters": map[string]any{
				"storage.location.template":    map[string]any{"Fn::Join": []any{"", []any{"s3://", map[string]any{"Ref": nag.LogicalID(p.RawData.Bucket)}, "/errors/${error_type}/${dt}/"}}},
				"projection.error_type.type":   "enum",
				"projection.error_type.values": "format-conversion-failed,partitioning-failed,processing-failed",
				"projection.dt.range":          "NOW-10YEARS,NOW",
			},
		}})
	})

	props := &tributary.PipelineProps{EventSchema: exampleSchema(t)}
	props.Delivery.Format, props.Delivery.Partitioning, props.Delivery.DataPrefix = "PARQUET", layout.EventTime, "events/"
	p, tpl = pipelineIn(props)
	if p.Catalog.Raw != nil || p.Catalog.Events == nil {
		t.Fatalf("Parquet catalog: raw %v, typed %v", p.Catalog.Raw, p.Catalog.Events)
	}
	if got := queriesRead(t, tpl); got != "errors errors events events events events" {
		t.Errorf("typed queries read %s", got)
	}
	cdktest.Expect(t, "the typed table in the event-time layout", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": map[string]any{
			"Name": "events", "Parameters": map[string]any{"projection.dt.range": "NOW-10YEARS,NOW+1DAYS", "classification": "parquet",
				"storage.location.template": map[string]any{"Fn::Join": []any{"", []any{"s3://", map[string]any{"Ref": nag.LogicalID(p.RawData.Bucket)}, "/events/parquet-by-event-time/${dt}/"}}}},
		}})
	})
	cdktest.Expect(t, "Parquet converted with the typed table", func() {
		tpl.HasResourceProperties(jsii.String("AWS::KinesisFirehose::DeliveryStream"), map[string]any{
			"ExtendedS3DestinationConfiguration": map[string]any{
				// Its own folder under the data prefix: a table never reads JSON objects as Parquet.
				"Prefix": "events/parquet-by-event-time/!{partitionKeyFromQuery:year}/!{partitionKeyFromQuery:month}/!{partitionKeyFromQuery:day}/!{partitionKeyFromQuery:hour}/",
				"DataFormatConversionConfiguration": map[string]any{"SchemaConfiguration": map[string]any{
					"TableName": map[string]any{"Ref": nag.LogicalID(p.Catalog.Events)},
				}},
			},
		})
	})
	cdktest.Expect(t, "the API validates with the schema", func() {
		tpl.HasResourceProperties(jsii.String("AWS::ApiGateway::Model"), map[string]any{"Schema": map[string]any{
			"title": "Event", "required": []any{"value"},
		}})
	})
}

// Athena cannot read ZIP or snappy-java (SNAPPY) objects: synth warns, once,
// naming the setting; other compressions give no warning.
func TestUnreadableCompressionWarns(t *testing.T) {
	for compression, warns := range map[string]bool{"ZIP": true, "SNAPPY": true, "GZIP": false, "HADOOP_SNAPPY": false} {
		props := &tributary.PipelineProps{}
		props.Delivery.Compression = compression
		p, _ := pipelineIn(props)
		var got []string
		for _, m := range *assertions.Annotations_FromStack(p.Catalog.Database.Stack()).FindWarning(jsii.String("*"), assertions.Match_AnyValue()) {
			if m.Level == cxapi.SynthesisMessageLevel_WARNING {
				got = append(got, *m.Id+": "+m.Entry.Data.(string))
			}
		}
		want := "compression=" + compression + ": Athena cannot read these objects, so the tables will find no events; choose GZIP or HADOOP_SNAPPY to query them."
		if warns && (len(got) != 1 || !strings.Contains(got[0], want)) || !warns && len(got) != 0 {
			t.Errorf("%s: warnings %v", compression, got)
		}
	}
}
