import '../../ancia_jupyter/static/chat.css';
import './base.css';
