-- @description Purge OIDC interactions that expired more than a day ago
-- @touches oidc_models: delete
-- @limit oidc_models.delete 100000
-- @critical users
delete from oidc_models where kind = 'Interaction' and expires_at < now() - interval '1 day';
