package event

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// The JSON Schema for producers in other languages must name exactly the
// fields of Event.
func TestSchemaMatchesEvent(t *testing.T) {
	b, err := os.ReadFile("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("schema is not valid JSON: %v", err)
	}
	var fromSchema, fromStruct []string
	for k := range schema.Properties {
		fromSchema = append(fromSchema, k)
	}
	rt := reflect.TypeOf(Event{})
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		fromStruct = append(fromStruct, name)
	}
	sort.Strings(fromSchema)
	sort.Strings(fromStruct)
	if !reflect.DeepEqual(fromSchema, fromStruct) {
		t.Fatalf("schema properties %v, Event JSON fields %v", fromSchema, fromStruct)
	}
	if strings.Join(schema.Required, ",") != "app,from,to" {
		t.Fatalf("required = %v", schema.Required)
	}
}
