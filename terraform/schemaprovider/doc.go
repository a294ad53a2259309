// Command schemaprovider serves the hashicorp/aws 6.25.0 provider schema,
// read from the pinned cdktf package (@cdktf/provider-aws 21.22.1, generated
// from that provider), so that the real terraform binary can run validate and
// test with mock_provider where the real provider cannot be installed. It has
// no AWS client: plan and apply against real resources are refused.
//
//	schemaprovider install -package DIR -mirror DIR   # extract schema, install into a filesystem mirror
//	schemaprovider                                     # (run by terraform) serve the installed schema
package main
