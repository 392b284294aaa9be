#!/bin/sh
# Installs k3r as k3s's install.sh installs k3s: the binary, kubectl /
# crictl / ctr links to it, a systemd unit or an OpenRC script (whichever
# runs this host), its environment file, /etc/k3r/config.yaml, and the
# k3r-killall.sh and k3r-uninstall.sh scripts.
#
#   INSTALL_K3R_BIN=target/release/k3r sh install.sh                  # a server
#   K3R_URL=https://server:6443 K3R_TOKEN=... INSTALL_K3R_BIN=./k3r sh install.sh   # an agent
#
# Variables (as k3s's INSTALL_K3S_* / K3S_*):
#   INSTALL_K3R_BIN          the k3r to install (default: ./k3r, then k3r beside this script
#                            or in target/release/)
#   INSTALL_K3R_EXEC         command and flags: "server --disable traefik", "agent", ...
#                            (default: agent when K3R_URL is set, else server)
#   INSTALL_K3R_NAME         service name (default: k3r, or k3r-agent for an agent)
#   INSTALL_K3R_BIN_DIR      where binaries and scripts go (default: /usr/local/bin)
#   INSTALL_K3R_SYSTEMD_DIR  where the unit and its env file go (default: /etc/systemd/system)
#   INSTALL_K3R_CONFIG_DIR   where config.yaml goes (default: /etc/k3r)
#   INSTALL_K3R_SYMLINK      "skip" makes no kubectl/crictl/ctr links, "force" replaces
#                            commands of those names already on PATH
#   INSTALL_K3R_SKIP_ENABLE  true: do not enable the service
#   INSTALL_K3R_SKIP_START   true: do not start the service
#   K3R_*                    written to the service's environment file (K3R_TOKEN, ...);
#                            K3R_URL, K3R_NODE_NAME, K3R_NODE_IP, K3R_DATA_DIR and
#                            K3R_KUBECONFIG_MODE seed config.yaml (when it does not exist)
set -eu

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
  echo "[ERROR] $*" >&2
  exit 1
}

BIN_DIR=${INSTALL_K3R_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_K3R_SYSTEMD_DIR:-/etc/systemd/system}
CONFIG_DIR=${INSTALL_K3R_CONFIG_DIR:-/etc/k3r}
DATA_DIR=${K3R_DATA_DIR:-/var/lib/k3r}

find_binary() {
  if [ -n "${INSTALL_K3R_BIN:-}" ]; then
    [ -f "$INSTALL_K3R_BIN" ] || fatal "INSTALL_K3R_BIN=$INSTALL_K3R_BIN is not a file"
    echo "$INSTALL_K3R_BIN"
    return
  fi
  here=$(cd "$(dirname "$0")" && pwd)
  for candidate in ./k3r "$here/k3r" "$here/target/release/k3r"; do
    if [ -f "$candidate" ]; then
      echo "$candidate"
      return
    fi
  done
  fatal "no k3r to install: build it (scripts/build --release) or set INSTALL_K3R_BIN"
}

# The command and flags k3r runs with.
setup_exec() {
  exec_line=${INSTALL_K3R_EXEC:-}
  case "$exec_line" in
    server* | agent*) ;;
    "")
      if [ -n "${K3R_URL:-}" ]; then exec_line=agent; else exec_line=server; fi
      ;;
    -*)
      if [ -n "${K3R_URL:-}" ]; then exec_line="agent $exec_line"; else exec_line="server $exec_line"; fi
      ;;
    *) fatal "INSTALL_K3R_EXEC must start with server or agent (or flags): $exec_line" ;;
  esac
  command=${exec_line%% *}
  if [ "$command" = agent ]; then
    [ -n "${K3R_URL:-}" ] || grep -qs '^server:' "$CONFIG_DIR/config.yaml" ||
      fatal "an agent needs K3R_URL (the server's https://HOST:6443)"
    [ -n "${K3R_TOKEN:-}${K3R_TOKEN_FILE:-}" ] || grep -qs '^token' "$CONFIG_DIR/config.yaml" ||
      fatal "an agent needs K3R_TOKEN or K3R_TOKEN_FILE (the server's node-token)"
  fi
  case "$exec_line" in *--data-dir* | *" -d "*)
    warn "--data-dir in INSTALL_K3R_EXEC: k3r-uninstall.sh removes $DATA_DIR only; set K3R_DATA_DIR instead" ;;
  esac
  name=${INSTALL_K3R_NAME:-k3r}
  if [ "$command" = agent ] && [ -z "${INSTALL_K3R_NAME:-}" ]; then name=k3r-agent; fi
}

# systemd (running as PID 1), OpenRC, or neither.
detect_init() {
  if [ -d /run/systemd/system ]; then
    init=systemd
  elif [ -x /sbin/openrc-run ] && command -v rc-service >/dev/null 2>&1; then
    init=openrc
  else
    init=none
  fi
}

install_binary() {
  mkdir -p "$BIN_DIR"
  cp "$binary" "$BIN_DIR/k3r.tmp"
  chmod 755 "$BIN_DIR/k3r.tmp"
  mv -f "$BIN_DIR/k3r.tmp" "$BIN_DIR/k3r"
  info "installed $BIN_DIR/k3r ($("$BIN_DIR/k3r" --version 2>/dev/null || echo "version unknown"))"
  for tool in kubectl crictl ctr; do
    link="$BIN_DIR/$tool"
    if [ "${INSTALL_K3R_SYMLINK:-}" = skip ]; then
      continue
    fi
    if [ -e "$link" ] || [ -L "$link" ]; then
      if [ -L "$link" ] && [ "$(readlink "$link")" = k3r ]; then continue; fi
      if [ "${INSTALL_K3R_SYMLINK:-}" != force ]; then
        info "skipping $link: it exists (INSTALL_K3R_SYMLINK=force replaces it)"
        continue
      fi
    elif [ "${INSTALL_K3R_SYMLINK:-}" != force ] && other=$(command -v "$tool" 2>/dev/null); then
      info "skipping $link: $tool is already at $other (INSTALL_K3R_SYMLINK=force links anyway)"
      continue
    fi
    ln -sf k3r "$link"
    info "linked $link -> k3r"
  done
}

# K3R_* variables: seed config.yaml with the non-secret settings, the
# rest (the token, say) in the service's environment file.
write_config() {
  mkdir -p "$CONFIG_DIR"
  if [ ! -e "$CONFIG_DIR/config.yaml" ]; then
    {
      echo "# k3r configuration (k3s's config.yaml keys); written by install.sh"
      [ -z "${K3R_URL:-}" ] || echo "server: \"$K3R_URL\""
      [ -z "${K3R_NODE_NAME:-}" ] || echo "node-name: \"$K3R_NODE_NAME\""
      [ -z "${K3R_NODE_IP:-}" ] || echo "node-ip: \"$K3R_NODE_IP\""
      [ -z "${K3R_DATA_DIR:-}" ] || echo "data-dir: \"$K3R_DATA_DIR\""
      [ -z "${K3R_KUBECONFIG_MODE:-}" ] || echo "write-kubeconfig-mode: \"$K3R_KUBECONFIG_MODE\""
    } >"$CONFIG_DIR/config.yaml"
    info "wrote $CONFIG_DIR/config.yaml"
  else
    info "keeping $CONFIG_DIR/config.yaml"
  fi
}

write_env_file() {
  env_file=$1
  mkdir -p "$(dirname "$env_file")"
  umask 077
  env | grep '^K3R_' | grep -v -E '^K3R_(URL|NODE_NAME|NODE_IP|DATA_DIR|KUBECONFIG_MODE)=' |
    sed -e "s/'/'\\\\''/g" -e "s/=\(.*\)/='\1'/" >"$env_file" || true
  umask 022
  info "wrote $env_file"
}

write_killall() {
  cat >"$BIN_DIR/k3r-killall.sh" <<EOF
#!/bin/sh
# Stops k3r and everything it started: pods, containerd and its shims,
# mounts, interfaces, iptables chains (k3r killall). Written by install.sh.
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
if [ -d /run/systemd/system ]; then
  systemctl stop '$name' 2>/dev/null || true
elif command -v rc-service >/dev/null 2>&1 && [ -e /etc/init.d/$name ]; then
  rc-service '$name' stop 2>/dev/null || true
fi
exec '$BIN_DIR/k3r' killall --data-dir '$DATA_DIR'
EOF
  chmod 755 "$BIN_DIR/k3r-killall.sh"
}

write_uninstall() {
  uninstall="$BIN_DIR/$name-uninstall.sh"
  cat >"$uninstall" <<EOF
#!/bin/sh
# Removes everything install.sh and k3r put on this host: the service,
# binaries and links, config, data dir, and (through k3r-killall.sh) the
# processes, mounts, interfaces and rules. Written by install.sh.
set -x
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
'$BIN_DIR/k3r-killall.sh'
if [ -d /run/systemd/system ]; then
  systemctl disable '$name' 2>/dev/null || true
  systemctl reset-failed '$name' 2>/dev/null || true
fi
if command -v rc-update >/dev/null 2>&1 && [ -e /etc/init.d/$name ]; then
  rc-update delete '$name' default 2>/dev/null || true
fi
rm -f '$SYSTEMD_DIR/$name.service' '$SYSTEMD_DIR/$name.service.env' \\
  '/etc/init.d/$name' '/etc/rancher/k3r/$name.env' '/var/log/$name.log'
[ -d /run/systemd/system ] && systemctl daemon-reload 2>/dev/null || true
for tool in kubectl crictl ctr; do
  [ -L '$BIN_DIR/'\$tool ] && [ "\$(readlink '$BIN_DIR/'\$tool)" = k3r ] && rm -f '$BIN_DIR/'\$tool
done
rm -rf '$CONFIG_DIR' '$DATA_DIR'
rm -f '$BIN_DIR/k3r' '$BIN_DIR/k3r-killall.sh'
rm -f "\$0"
EOF
  chmod 755 "$uninstall"
  info "wrote $BIN_DIR/k3r-killall.sh and $uninstall"
}

install_systemd() {
  unit="$SYSTEMD_DIR/$name.service"
  mkdir -p "$SYSTEMD_DIR"
  write_env_file "$unit.env"
  cat >"$unit" <<EOF
[Unit]
Description=k3r - lightweight Kubernetes
Documentation=https://github.com/k3r-io/k3r
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$unit.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$BIN_DIR/k3r $exec_line
EOF
  info "wrote $unit"
  if [ "$init" != systemd ]; then
    return
  fi
  systemctl daemon-reload
  if [ "${INSTALL_K3R_SKIP_ENABLE:-}" != true ]; then
    systemctl enable "$name" >/dev/null 2>&1
    info "enabled $name"
  fi
  if [ "${INSTALL_K3R_SKIP_START:-}" != true ]; then
    systemctl restart "$name"
    info "started $name (journalctl -u $name -f shows its log)"
  fi
}

install_openrc() {
  script="/etc/init.d/$name"
  mkdir -p /etc/rancher/k3r
  write_env_file "/etc/rancher/k3r/$name.env"
  cat >"$script" <<EOF
#!/sbin/openrc-run
depend() {
  after network-online
  want cgroups
}
start_pre() {
  rm -f /tmp/k3r.*
}
supervisor=supervise-daemon
name=$name
command="$BIN_DIR/k3r"
command_args="$exec_line >>/var/log/$name.log 2>&1"
output_log=/var/log/$name.log
error_log=/var/log/$name.log
pidfile="/var/run/$name.pid"
respawn_delay=5
respawn_max=0
set -o allexport
if [ -f /etc/environment ]; then . /etc/environment; fi
if [ -f /etc/rancher/k3r/$name.env ]; then . /etc/rancher/k3r/$name.env; fi
set +o allexport
EOF
  chmod 755 "$script"
  info "wrote $script"
  if [ "${INSTALL_K3R_SKIP_ENABLE:-}" != true ]; then
    rc-update add "$name" default >/dev/null
  fi
  if [ "${INSTALL_K3R_SKIP_START:-}" != true ]; then
    rc-service "$name" restart
  fi
}

main() {
  [ "$(id -u)" -eq 0 ] || fatal "install.sh must run as root"
  binary=$(find_binary)
  setup_exec
  detect_init
  install_binary
  write_config
  write_killall
  write_uninstall
  case "$init" in
    systemd) install_systemd ;;
    openrc) install_openrc ;;
    none)
      # The unit is still written (for a host that boots systemd later).
      [ -d "$(dirname "$SYSTEMD_DIR")" ] && install_systemd
      warn "neither systemd (as PID 1) nor OpenRC runs this host: k3r is installed but not started"
      echo "Run it in the foreground with:"
      echo "  $BIN_DIR/k3r $exec_line"
      ;;
  esac
  info "uninstall with $BIN_DIR/$name-uninstall.sh"
}

main "$@"
