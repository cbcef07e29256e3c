{{ rejected_rows('external', 'signals', 'stg_external__signals__validated') }}
