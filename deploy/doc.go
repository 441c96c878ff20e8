// Package deploy holds no code: it is where the deployment examples live
// (docker-compose.yml, telegraf.conf, pginflux.service,
// kubernetes-sidecar.yaml, grafana-dashboard.json), and its tests check
// them against the real flag set and metric names.
package deploy
