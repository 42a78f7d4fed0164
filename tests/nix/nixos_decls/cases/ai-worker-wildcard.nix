# Another module opens a wildcard rule for ai-worker (seed 002's `docker run *`), and one
# that lets it pick the target user: the module's assertion must fail the build.
{
  imports = [ ./ai-worker-seed.nix ];
  security.sudo.extraRules = [
    {
      users = [ "ai-worker" ];
      runAs = "root";
      commands = [
        {
          command = "/run/current-system/sw/bin/docker run *";
          options = [ "NOPASSWD" ];
        }
      ];
    }
    {
      users = [ "ai-worker" ];
      commands = [ "/run/current-system/sw/bin/ai-docker ps" ];
    }
  ];
}
