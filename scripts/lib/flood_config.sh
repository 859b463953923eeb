# Sourced by scripts/flood_runs.sh and scripts/offcpu_flood.sh: the 3-node
# config their floods run against (ports 7550-7555, as bench.sh's).
write_flood_config() {
  mkdir -p run
  cat >run/flood.json <<JSON
{"addresses": [
  {"ip": "127.0.0.1", "port": 7550, "internal_port": 7553},
  {"ip": "127.0.0.1", "port": 7551, "internal_port": 7554},
  {"ip": "127.0.0.1", "port": 7552, "internal_port": 7555}]}
JSON
}
