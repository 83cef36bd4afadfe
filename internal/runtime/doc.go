// Package runtime runs topologies: it turns a built topology into tasks (one
// per sub-topology and partition), feeds them batches of raw records, keeps
// their stream time and punctuations, logs their store writes to changelog
// topics and restores stores from them. Package kafkaio drives it from Kafka,
// package kstest from an in-memory log; both use the same tasks.
//
// A task processes a batch in one pass: each record is decoded at its source
// and pushed through the node executors, which call each other directly, down
// to sinks that append to the task's output buffer. Nothing on that path
// allocates, boxes values in interfaces, or crosses a channel.
package runtime
