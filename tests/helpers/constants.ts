export const TEMPLATE_DB = 'safe_run_template';
