// Package snapshot publishes Pebble checkpoints to an object bucket and
// restores them.
//
// Layout of a bucket:
//
//	sst/<sha256>                        one object per distinct file content
//	snapshots/<height>-<blockhash>.json one Manifest per snapshot
//	LATEST                              the key of the newest manifest
//
// The height in a manifest key is zero-padded to ten digits so that keys
// sort by height. Files are content-addressed, so consecutive snapshots
// share most objects and a new snapshot uploads only what is new.
//
// Publishing (Publisher.Publish) uploads data first, the manifest next and
// LATEST last, so LATEST never names an incomplete snapshot; every step is
// idempotent and a crashed publish is finished by running it again.
// Deletion (Publisher.Retain) goes the other way: old manifests first, then
// objects no kept manifest references.
//
// Restoring (Restorer.Restore) reads LATEST (ignored, with a warning, when a
// newer manifest exists: a replayed LATEST must not send nodes back), falls
// back to older manifests when one is broken, untrusted or its files do not
// verify, downloads into .part files in a staging directory next to the
// destination, verifies every size and sha256, and renames the staging
// directory into place.
package snapshot
