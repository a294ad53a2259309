package main

import (
	"os"
	"sync"
	"testing"
)

func TestStorageType(t *testing.T) {
	for _, c := range []struct{ storage, kind, want string }{
		{"string", "simple", `"string"`},
		{"boolean", "simple", `"bool"`},
		{"any", "simple", `"dynamic"`},
		{"stringList", "list", `["list","string"]`},
		{"stringList", "set", `["set","string"]`},
		{"numberMap", "map", `["map","number"]`},
		{"stringListList", "set", `["set",["list","string"]]`},
		{"stringMapList", "list", `["list",["map","string"]]`},
	} {
		got, err := storageType(c.storage, c.kind)
		if err != nil || string(got) != c.want {
			t.Errorf("storageType(%q, %q) = %s, %v; want %s", c.storage, c.kind, got, err, c.want)
		}
	}
	if _, err := storageType("S3BucketList", "list"); err == nil {
		t.Error("an unknown storage class was accepted")
	}
}

var (
	extracted     *Schema
	extractErr    error
	extractedOnce sync.Once
)

// pinned extracts the schema from the package make terraform-check
// unpacked (AMBER_CDKTF_AWS), once for all tests.
func pinned(t *testing.T) *Schema {
	t.Helper()
	dir := os.Getenv("AMBER_CDKTF_AWS")
	if dir == "" {
		t.Skip("AMBER_CDKTF_AWS is not set: run through `make terraform-check`")
	}
	extractedOnce.Do(func() { extracted, extractErr = Extract(dir) })
	if extractErr != nil {
		t.Fatal(extractErr)
	}
	return extracted
}

func attr(t *testing.T, b Block, name string) Attr {
	t.Helper()
	for _, a := range b.Attributes {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no attribute %s", name)
	return Attr{}
}

func nested(t *testing.T, b Block, name string) NestedBlock {
	t.Helper()
	for _, nb := range b.Blocks {
		if nb.Name == name {
			return nb
		}
	}
	t.Fatalf("no block %s", name)
	return NestedBlock{}
}

// Facts of hashicorp/aws 6.25.0 as its documentation states them.
func TestExtractKnownSchema(t *testing.T) {
	s := pinned(t)
	if n := len(s.Resources); n < 1500 {
		t.Errorf("%d resources; hashicorp/aws 6.25.0 has over 1500", n)
	}
	if n := len(s.DataSources); n < 600 {
		t.Errorf("%d data sources; hashicorp/aws 6.25.0 has over 600", n)
	}

	tg := s.Resources["aws_lb_target_group"]
	if a := attr(t, tg, "proxy_protocol_v2"); string(a.Type) != `"bool"` || !a.Optional || a.Required {
		t.Errorf("aws_lb_target_group.proxy_protocol_v2 = %+v; want an optional bool", a)
	}
	if a := attr(t, tg, "arn"); !a.Computed || a.Optional || a.Required {
		t.Errorf("aws_lb_target_group.arn = %+v; want computed only", a)
	}
	if a := attr(t, tg, "load_balancer_arns"); string(a.Type) != `["set","string"]` {
		t.Errorf("aws_lb_target_group.load_balancer_arns type %s; want a set of strings", a.Type)
	}
	if hc := nested(t, tg, "health_check"); hc.Nesting != "list" || hc.MaxItems != 1 || hc.MinItems != 0 {
		t.Errorf("health_check block = %s max %d min %d; want an optional list of at most one", hc.Nesting, hc.MaxItems, hc.MinItems)
	}

	v := s.Resources["aws_s3_bucket_versioning"]
	if a := attr(t, v, "bucket"); !a.Required {
		t.Errorf("aws_s3_bucket_versioning.bucket = %+v; want required", a)
	}
	if vc := nested(t, v, "versioning_configuration"); vc.MinItems != 1 || vc.MaxItems != 1 || !attr(t, vc.Block, "status").Required {
		t.Errorf("versioning_configuration = %+v; want exactly one block with a required status", vc)
	}

	// A computed-only nested attribute is an object list, not a block.
	if a := attr(t, s.Resources["aws_eks_cluster"], "certificate_authority"); string(a.Type) != `["list",["object",{"data":"string"}]]` || !a.Computed {
		t.Errorf("aws_eks_cluster.certificate_authority = %+v %s; want a computed list of objects", a, a.Type)
	}
	inst := s.Resources["aws_instance"]
	if a := attr(t, inst, "get_password_data"); !a.Optional {
		t.Errorf("aws_instance.get_password_data (renamed in jsii) = %+v; want optional", a)
	}

	region := s.DataSources["aws_region"]
	if a := attr(t, region, "region"); !a.Optional || !a.Computed {
		t.Errorf("data aws_region.region = %+v; want optional and computed", a)
	}
	if a := attr(t, s.DataSources["aws_caller_identity"], "account_id"); !a.Computed {
		t.Errorf("data aws_caller_identity.account_id = %+v; want computed", a)
	}

	if a := attr(t, s.Provider, "region"); !a.Optional {
		t.Errorf("provider region = %+v; want optional", a)
	}
	nested(t, s.Provider, "assume_role")
	for _, a := range s.Provider.Attributes {
		if a.Name == "alias" {
			t.Error("the provider schema has the alias meta-argument")
		}
	}

	// The whole schema converts to the wire form.
	if _, err := s.proto(); err != nil {
		t.Fatal(err)
	}
}
