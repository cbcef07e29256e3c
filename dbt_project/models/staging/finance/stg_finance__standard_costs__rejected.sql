{{ rejected_rows('finance', 'standard_costs', 'stg_finance__standard_costs__validated') }}
