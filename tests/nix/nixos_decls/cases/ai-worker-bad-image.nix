# An image "name" that carries docker options: the option's type refuses it.
{
  virtualisation.docker.enable = true;
  stagingvm.aiWorker = {
    enable = true;
    images = [ "alpine:3.20 --privileged" ];
  };
}
