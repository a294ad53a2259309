package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Type is a Terraform type in the compact form of `terraform providers
// schema -json`: "string", ["list","string"], ["object",{"a":"number"}].
type Type = json.RawMessage

// Attr is one attribute of a block.
type Attr struct {
	Name     string `json:"name"`
	Type     Type   `json:"type"`
	Required bool   `json:"required,omitempty"`
	Optional bool   `json:"optional,omitempty"`
	Computed bool   `json:"computed,omitempty"`
}

// NestedBlock is a block nested in another, with its nesting mode
// ("single", "list", "set" or "map") and item limits.
type NestedBlock struct {
	Name     string `json:"name"`
	Nesting  string `json:"nesting"`
	MinItems int64  `json:"min_items,omitempty"`
	MaxItems int64  `json:"max_items,omitempty"`
	Block    Block  `json:"block"`
}

// Block is a set of attributes and nested blocks.
type Block struct {
	Attributes []Attr        `json:"attributes,omitempty"`
	Blocks     []NestedBlock `json:"blocks,omitempty"`
}

// Schema is what the provider serves: its own configuration block and one
// block per resource and data source type.
type Schema struct {
	Provider    Block            `json:"provider"`
	Resources   map[string]Block `json:"resources"`
	DataSources map[string]Block `json:"data_sources"`
}

func loadSchema(path string) (*Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read provider schema: %w (run `make terraform-check` to install the schema provider)", err)
	}
	var s Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode provider schema %s: %w", path, err)
	}
	return &s, nil
}

func (s *Schema) write(path string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// parseType turns the JSON form of a type into a tftypes.Type.
func parseType(raw json.RawMessage) (tftypes.Type, error) {
	var name string
	if json.Unmarshal(raw, &name) == nil {
		switch name {
		case "string":
			return tftypes.String, nil
		case "number":
			return tftypes.Number, nil
		case "bool":
			return tftypes.Bool, nil
		case "dynamic":
			return tftypes.DynamicPseudoType, nil
		}
		return nil, fmt.Errorf("unknown primitive type %q", name)
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return nil, fmt.Errorf("malformed type %s", raw)
	}
	if err := json.Unmarshal(pair[0], &name); err != nil {
		return nil, fmt.Errorf("malformed type %s", raw)
	}
	if name == "object" {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(pair[1], &fields); err != nil {
			return nil, fmt.Errorf("malformed object type %s", raw)
		}
		types := make(map[string]tftypes.Type, len(fields))
		for k, v := range fields {
			t, err := parseType(v)
			if err != nil {
				return nil, err
			}
			types[k] = t
		}
		return tftypes.Object{AttributeTypes: types}, nil
	}
	elem, err := parseType(pair[1])
	if err != nil {
		return nil, err
	}
	switch name {
	case "list":
		return tftypes.List{ElementType: elem}, nil
	case "set":
		return tftypes.Set{ElementType: elem}, nil
	case "map":
		return tftypes.Map{ElementType: elem}, nil
	}
	return nil, fmt.Errorf("unknown collection type %q", name)
}

var nestingModes = map[string]tfprotov5.SchemaNestedBlockNestingMode{
	"single": tfprotov5.SchemaNestedBlockNestingModeSingle,
	"list":   tfprotov5.SchemaNestedBlockNestingModeList,
	"set":    tfprotov5.SchemaNestedBlockNestingModeSet,
	"map":    tfprotov5.SchemaNestedBlockNestingModeMap,
}

func (b Block) proto() (*tfprotov5.SchemaBlock, error) {
	out := &tfprotov5.SchemaBlock{}
	for _, a := range b.Attributes {
		t, err := parseType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov5.SchemaAttribute{
			Name: a.Name, Type: t, Required: a.Required, Optional: a.Optional, Computed: a.Computed,
		})
	}
	for _, nb := range b.Blocks {
		inner, err := nb.Block.proto()
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", nb.Name, err)
		}
		mode, ok := nestingModes[nb.Nesting]
		if !ok {
			return nil, fmt.Errorf("block %s: unknown nesting %q", nb.Name, nb.Nesting)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: nb.Name, Block: inner, Nesting: mode, MinItems: nb.MinItems, MaxItems: nb.MaxItems,
		})
	}
	return out, nil
}

func (s *Schema) proto() (*tfprotov5.GetProviderSchemaResponse, error) {
	p, err := s.Provider.proto()
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	resp := &tfprotov5.GetProviderSchemaResponse{
		Provider:           &tfprotov5.Schema{Block: p},
		ResourceSchemas:    map[string]*tfprotov5.Schema{},
		DataSourceSchemas:  map[string]*tfprotov5.Schema{},
		ServerCapabilities: &tfprotov5.ServerCapabilities{PlanDestroy: true},
	}
	for name, b := range s.Resources {
		pb, err := b.proto()
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
		resp.ResourceSchemas[name] = &tfprotov5.Schema{Block: pb}
	}
	for name, b := range s.DataSources {
		pb, err := b.proto()
		if err != nil {
			return nil, fmt.Errorf("data source %s: %w", name, err)
		}
		resp.DataSourceSchemas[name] = &tfprotov5.Schema{Block: pb}
	}
	return resp, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
