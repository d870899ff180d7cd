// Generated code lives beside this file; see scripts/generate-protos.sh.
