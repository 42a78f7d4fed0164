# Another module puts ai-worker back into the docker group (at mkForce too, or as a member
# of the group): the module's assertion must fail the build.
{ lib, ... }:
{
  imports = [ ./ai-worker-seed.nix ];
  users.users.ai-worker.extraGroups = lib.mkForce [ "docker" ];
  users.groups.docker.members = [ "ai-worker" ];
}
