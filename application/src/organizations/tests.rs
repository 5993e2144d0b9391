//! Use-case tests of organizations over the in-memory fakes.
