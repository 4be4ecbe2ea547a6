package catalog_test

import (
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/catalog"
	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/internal/cdktest"
	"github.com/tributary/tributary/constructs/internal/nag"
	"github.com/tributary/tributary/internal/layout"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func schema(t *testing.T) *eventschema.Schema {
	raw, err := os.ReadFile("../eventschema/testdata/game.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventschema.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// synthesized is one configuration's catalog on a stack of its own, beside
// the bucket it reads.
type synthesized struct {
	c      *catalog.Catalog
	tpl    assertions.Template
	bucket string
	tables map[string]map[string]any // TableInput by table name
}

func once(props func(t *testing.T) catalog.Props) func(t *testing.T) *synthesized {
	var s *synthesized
	return func(t *testing.T) *synthesized {
		if s != nil {
			return s
		}
		stack := cdktest.NewStack()
		bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
		p := props(t)
		p.Bucket = bucket
		c := catalog.New(stack, "Catalog", &p)
		s = &synthesized{c: c, tpl: assertions.Template_FromStack(stack, nil), bucket: nag.LogicalID(bucket), tables: map[string]map[string]any{}}
		for _, r := range *s.tpl.FindResources(jsii.String("AWS::Glue::Table"), nil) {
			in := (*r)["Properties"].(map[string]any)["TableInput"].(map[string]any)
			s.tables[in["Name"].(string)] = in
		}
		return s
	}
}

var (
	// defaults: no schema, arrival time, JSON.
	defaults = once(func(*testing.T) catalog.Props { return catalog.Props{Layout: layout.Layout{DataPrefix: "raw-data/"}} })
	// typed: a schema, the event-time layout, another prefix and database name.
	typed = once(func(t *testing.T) catalog.Props {
		return catalog.Props{Layout: layout.Layout{DataPrefix: "events/json/", By: layout.EventTime}, Schema: schema(t), DatabaseName: "acme_dev"}
	})
	// parquet: a schema and Parquet objects.
	parquet = once(func(t *testing.T) catalog.Props {
		return catalog.Props{Layout: layout.Layout{DataPrefix: "raw-data/"}, Schema: schema(t), Format: catalog.Parquet}
	})
)

func location(bucket, path string) map[string]any {
	return map[string]any{"Fn::Join": []any{"", []any{"s3://", map[string]any{"Ref": bucket}, path}}}
}

// projection is every table parameter: partition projection of dt over the
// layout's hour folders, and the location template that names them.
func projection(bucket, prefix, max string, extra map[string]any) map[string]any {
	p := map[string]any{
		"projection.enabled": "true", "projection.dt.type": "date", "projection.dt.format": "yyyy/MM/dd/HH",
		"projection.dt.interval": "1", "projection.dt.interval.unit": "HOURS", "projection.dt.range": "NOW-10YEARS," + max,
		"storage.location.template": location(bucket, "/"+prefix+"${dt}/"),
		"has_encrypted_data":        false,
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

var dtKey = []any{map[string]any{"Name": "dt", "Type": "string", "Comment": "the UTC hour folder, yyyy/MM/dd/HH; filter on it to read only those hours"}}

// The database has an explicit lower-case name Athena takes (from the stack
// name by default), goes with the stack, and holds exactly the tables the
// configuration needs.
func TestDatabase(t *testing.T) {
	for name, c := range map[string]struct {
		s      *synthesized
		db     string
		tables string
	}{
		"default": {defaults(t), "test", "[events_raw]"},
		"typed":   {typed(t), "acme_dev", "[events events_raw]"},
		"parquet": {parquet(t), "test", "[events]"},
	} {
		id, db := cdktest.Only(t, c.s.tpl, "AWS::Glue::Database")
		if got := fmt.Sprint(db["DatabaseInput"].(map[string]any)["Name"]); got != c.db || c.s.c.DatabaseName != c.db {
			t.Errorf("%s: database %s (%s), want %s", name, got, c.s.c.DatabaseName, c.db)
		}
		cdktest.Expect(t, name+": the database and its tables go with the stack", func() {
			c.s.tpl.HasResource(jsii.String("AWS::Glue::Database"), map[string]any{"DeletionPolicy": "Delete"})
			c.s.tpl.AllResources(jsii.String("AWS::Glue::Table"), map[string]any{
				"DeletionPolicy": "Delete", "Properties": map[string]any{"DatabaseName": map[string]any{"Ref": id}},
			})
		})
		var names []string
		for n := range c.s.tables {
			names = append(names, n)
		}
		sort.Strings(names)
		if got := fmt.Sprint(names); got != c.tables {
			t.Errorf("%s: tables %s, want %s", name, got, c.tables)
		}
	}
	if got := catalog.DatabaseNameFor("Acme-dev-2"); got != "acme_dev_2" {
		t.Errorf("DatabaseNameFor(Acme-dev-2) = %s", got)
	}
}

// events_raw reads any event: one string column holding the whole line
// (LazySimpleSerDe split on U+0001, which no JSON line holds), over the data
// prefix, with dt projected from the hour folders.
func TestRawTableReadsEveryLine(t *testing.T) {
	s := defaults(t)
	cdktest.Expect(t, "events_raw", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": assertions.Match_ObjectEquals(&map[string]any{
			"Name": "events_raw", "TableType": "EXTERNAL_TABLE",
			"Description":   "Every event as its JSON line: query with json_extract_scalar(line, '$.field')",
			"PartitionKeys": dtKey,
			"Parameters":    assertions.Match_ObjectEquals(ptr(projection(s.bucket, "raw-data/", "NOW", nil))),
			"StorageDescriptor": assertions.Match_ObjectEquals(&map[string]any{
				"Columns":      []any{map[string]any{"Name": "line", "Type": "string", "Comment": "the event, one line of JSON"}},
				"Location":     location(s.bucket, "/raw-data/"),
				"InputFormat":  "org.apache.hadoop.mapred.TextInputFormat",
				"OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
				"SerdeInfo": map[string]any{
					"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
					"Parameters":           map[string]any{"field.delim": "\u0001", "serialization.format": "\u0001"},
				},
				"Compressed": false, "StoredAsSubDirectories": false,
			}),
		})})
	})
}

var gameColumns = []any{
	col("event_id", "string"), col("userid", "string"), col("level", "bigint"), col("score", "double"), col("won", "boolean"),
	col("kind", "string"), col("device", "struct<os:string,version:bigint>"), col("tags", "array<string>"),
	col("items", "array<struct<sku:string,qty:bigint>>"), col("extra", "string"), col("event_time", "string"),
}

func col(name, typ string) map[string]any { return map[string]any{"Name": name, "Type": typ} }

func ptr[T any](v T) *T { return &v }

// events has the schema's columns, read by the OpenX JSON SerDe from the
// same folders; with the event-time layout both tables project a day ahead.
func TestTypedTableFollowsTheSchema(t *testing.T) {
	s := typed(t)
	for name, serde := range map[string]map[string]any{
		"events": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe", "Parameters": map[string]any{
			"ignore.malformed.json": "true", "use.null.for.invalid.data": "true", "case.insensitive": "true"}},
		"events_raw": nil,
	} {
		want := projection(s.bucket, "events/json/", "NOW+1DAYS", nil)
		if name == "events" {
			want["classification"] = "json"
		}
		cdktest.Expect(t, name, func() {
			s.tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": map[string]any{
				"Name": name, "PartitionKeys": dtKey, "Parameters": assertions.Match_ObjectEquals(&want),
			}})
		})
		if serde != nil {
			cdktest.Expect(t, name+" columns", func() {
				s.tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": map[string]any{
					"Name": name, "StorageDescriptor": map[string]any{
						"Columns": gameColumns, "SerdeInfo": assertions.Match_ObjectEquals(&serde),
						"Location": location(s.bucket, "/events/json/"), "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
					},
				}})
			})
		}
	}
}

// With Parquet, the typed table reads Parquet and the text table is absent.
func TestParquetTable(t *testing.T) {
	s := parquet(t)
	cdktest.Expect(t, "events as Parquet", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Glue::Table"), map[string]any{"TableInput": map[string]any{
			"Name":       "events",
			"Parameters": assertions.Match_ObjectEquals(ptr(projection(s.bucket, "raw-data/", "NOW", map[string]any{"classification": "parquet"}))),
			"StorageDescriptor": map[string]any{
				"Columns":      gameColumns,
				"InputFormat":  "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
				"OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
				"SerdeInfo":    assertions.Match_ObjectEquals(&map[string]any{"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}),
			},
		}})
	})
	if s.c.Raw != nil || s.c.Events == nil {
		t.Errorf("Raw %v, Events %v: want only the typed table", s.c.Raw, s.c.Events)
	}
}

// The catalog is metadata only: no bucket of its own, no role, nothing else.
func TestNothingElse(t *testing.T) {
	for name, s := range map[string]*synthesized{"default": defaults(t), "typed": typed(t), "parquet": parquet(t)} {
		types := map[string]int{}
		for _, r := range cdktest.JSON(s.tpl)["Resources"].(map[string]any) {
			types[r.(map[string]any)["Type"].(string)]++
		}
		delete(types, "AWS::Glue::Table")
		if got := fmt.Sprint(types); got != "map[AWS::Glue::Database:1 AWS::S3::Bucket:1]" {
			t.Errorf("%s: resources %s, want the database and the tables beside the test's bucket", name, got)
		}
	}
}

// Invalid props fail before anything is created, with one line naming the
// setting, the value and what is allowed.
func TestInvalidProps(t *testing.T) {
	stack := cdktest.NewStack()
	bucket := awss3.NewBucket(stack, jsii.String("Bucket"), nil)
	l := layout.Layout{DataPrefix: "raw-data/"}
	before := len(*stack.Node().Children())
	for i, c := range []struct {
		props catalog.Props
		want  string
	}{
		{catalog.Props{Layout: l, Format: catalog.Parquet}, `outputFormat: invalid value "PARQUET"; allowed: PARQUET only with eventSchema: Firehose converts to Parquet with the typed table's columns`},
		{catalog.Props{Layout: l, Format: "CSV"}, `outputFormat: invalid value "CSV"; allowed: one of ["JSON" "PARQUET"]`},
		{catalog.Props{Layout: layout.Layout{DataPrefix: "raw-data/", By: "PROCESSING_TIME"}}, `partitioning: invalid value "PROCESSING_TIME"; allowed: one of ["ARRIVAL_TIME" "EVENT_TIME"]`},
		{catalog.Props{Layout: l, DatabaseName: "Tributary-PROD"}, `databaseName: invalid value "Tributary-PROD"; allowed: 1 to 255 lower-case letters, digits and _`},
	} {
		if err := c.props.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.props, err, c.want)
		}
		c.props.Bucket = bucket
		cdktest.Panics(t, c.want, func() { catalog.New(stack, fmt.Sprint("Catalog", i), &c.props) })
	}
	cdktest.Panics(t, "catalog: Bucket and Layout are required", func() { catalog.New(stack, "NoProps", nil) })
	cdktest.Panics(t, "catalog: Bucket and Layout are required", func() { catalog.New(stack, "NoLayout", &catalog.Props{Bucket: bucket}) })
	if n := len(*stack.Node().Children()) - before; n != 0 {
		t.Errorf("rejected props left %d constructs in the stack", n)
	}
}
