# fieldsync serve on Nomad: two allocations, one leading (elected through Consul), the other standing by.
#   nomad var put nomad/jobs/fieldsync consul_token=… webhook_secret=… git_token=…
#   nomad job run docs/deploy/fieldsync.nomad.hcl
job "fieldsync" {
  type = "service"

  group "fieldsync" {
    count = 2

    network {
      port "http" { to = 9469 }
    }

    service {
      name     = "fieldsync"
      port     = "http"
      provider = "consul"
      tags     = ["metrics"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
    }

    task "serve" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      config {
        image = "registry.example.com/fieldsync:0.1.0"
        ports = ["http"]
        args = [
          "--git-url", "https://github.com/example/fields.git",
          "--branch", "main",
          "--workdir", "/alloc/data/clone",
          "--git-token-file", "/secrets/git-token",
          "--consul-token-file", "/secrets/consul-token",
          "--webhook-secret-file", "/secrets/webhook-secret",
          "--listen", "0.0.0.0:9469",
          "--log-format", "json",
        ]
      }

      env {
        CONSUL_HTTP_ADDR = "${attr.unique.network.ip-address}:8500"
      }

      template {
        destination = "secrets/consul-token"
        data        = "{{ with nomadVar \"nomad/jobs/fieldsync\" }}{{ .consul_token }}{{ end }}"
      }
      template {
        destination = "secrets/webhook-secret"
        data        = "{{ with nomadVar \"nomad/jobs/fieldsync\" }}{{ .webhook_secret }}{{ end }}"
        change_mode = "signal"
        change_signal = "SIGHUP"
      }
      template {
        destination = "secrets/git-token"
        data        = "{{ with nomadVar \"nomad/jobs/fieldsync\" }}{{ .git_token }}{{ end }}"
      }

      resources {
        cpu    = 50
        memory = 128
      }
    }
  }
}
