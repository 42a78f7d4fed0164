# The seed's use (seed 002's README): benchmarks through ollama's HTTP API, the agent may
# look at, read the logs of and restart the `ollama` container and run one image. Seed 000's
# module put ai-worker in the docker group; the module must take it out again.
{
  virtualisation.docker.enable = true;
  users.users.ai-worker.extraGroups = [ "docker" ]; # seed 000: aiWorkerAccess
  stagingvm.aiWorker = {
    enable = true;
    containers = [ "ollama" ];
    images = [ "alpine:3.20" ];
  };
}
