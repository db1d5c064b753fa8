# Sourced by the scripts that measure verdicts on a busy machine: CPU-burning busy loops
# beside the measurement (a shared CI runner), stopped when the script exits. Only the PIDs
# started here are ever killed.
#
#   source scripts/burners.sh; start_burners K   (K = 0 starts none)

burner_pids=()

stop_burners() {
    for pid in "${burner_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${burner_pids[@]}"; do wait "$pid" 2>/dev/null; done
    burner_pids=()
}

start_burners() {
    trap stop_burners EXIT
    trap 'exit 130' INT TERM
    for ((b = 0; b < $1; b++)); do
        sh -c 'while :; do :; done' &
        burner_pids+=("$!")
    done
}
